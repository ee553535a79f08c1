"""Compatibility with the original DaSS release: readers of its files (:mod:`.original`) and their
conversion into this project's database, candidates, architecture lists and teachers
(:mod:`.importer`). Entry: ``python -m dass.compat {import,teacher}`` (see ``docs/COMPAT.md``).
Names are imported lazily (``dass/_lazy.py``), so the entry answers ``--help`` without torch."""
from .._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "importer": ["CANDIDATES_FORMAT", "ORIGINAL_NOISE_SEED", "candidates_from_pool", "convert_teacher",
                 "find_release", "import_release", "known_num_classes", "sample_list", "task_from_records"],
    "original": ["NetSample", "OriginalRecords", "OriginalTeacher", "SearchPool", "decode_arch", "parse_records",
                 "read_correlation_samples", "read_database_file", "read_net_samples", "read_search_pool",
                 "read_teacher_checkpoint"],
})
