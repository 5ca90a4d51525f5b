"""DVC stage entry points (one small script per stage); see dvc.yaml."""
