"""CLI sub-commands: each module defines ``register(app)``; the CLI discovers them all, so a task adds a
command by adding a module here, without editing a shared file."""
