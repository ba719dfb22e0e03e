"""``remit experiment``: arms x seeds from one start, with seed-level statistics (see :mod:`remit.experiment.run`)."""
