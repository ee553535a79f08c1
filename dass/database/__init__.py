"""The meta-training database: one file per task with the teacher and its KD-trained students.
Format in ``format.py`` and docs/DATABASE.md."""
