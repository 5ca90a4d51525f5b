"""How ``triptych measure`` feeds each kind of metric: one module per ``kind`` of the metric registry.

A module defines ``OPTIONS`` (the measure options it consumes besides ``--pred`` / ``--gt``; anything
else given is refused, not ignored) and ``run(measurement, fn)``, which fills ``measurement.per_sample``
and ``measurement.aggregate``; optionally ``check(measurement, fn)``, the kind's own option rules, run
before any weights are looked up. A kind that consumes ``--weights`` records the user's file itself. A task adds a kind by adding a module here.
"""
