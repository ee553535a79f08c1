"""The database stage: one file per task with the teacher and its KD-trained students
(``python -m dass.database``, :func:`dass.database.stage.run`). Build config in ``config.py``, the
build in ``builder.py``, job hashing in ``jobs.py``, the task-file format in ``format.py`` and
docs/DATABASE.md."""
