"""The database stage: one file per task with the teacher and its KD-trained students
(``python -m dass.database``, :func:`dass.database.commands.run`). Build config in ``config.py``, the
build in ``builder.py`` (its plan in ``plan.py``, jobs in ``runners.py``, launchers in
``launchers.py``, merge in ``merge.py``), job hashing in ``jobs.py``, the task-file format in ``format.py`` and
docs/DATABASE.md, a task file as the stages read it (``SavedTask``) in ``saved.py``."""
