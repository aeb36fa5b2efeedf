"""Reading COCO-style JSON files and checking the types of their ids and names.

The datasets and the metrics both read COCO files; a wrong JSON type there (a
list as an id, a number as a file name, an id beyond 64 bits) otherwise ends
in a TypeError or OverflowError deep inside numpy or pycocotools, naming
neither the file nor the entry. The checks here name both.
"""
import json
from typing import Any, List, Optional

#: COCO ids are integers that fit numpy's int64 (pycocotools and the metrics
#: put them in int64 arrays).
INT64_MIN, INT64_MAX = -2**63, 2**63 - 1
#: The id fields of each kind of COCO entry.
ID_FIELDS = {
    'images': ('id',),
    'annotations': ('id', 'image_id', 'category_id'),
    'categories': ('id',),
}


def read_json(path: str, what: str = 'JSON file', shown: Optional[str] = None) -> Any:
    """The content of the JSON file at ``path``.

    Raises:
        ValueError: The file is not valid JSON, or is nested deeper than
            Python's parser follows; the message names ``what`` and ``shown``
            (the file as the user named it; ``path`` by default).
    """
    shown = path if shown is None else shown
    with open(path, encoding='utf-8') as file:
        try:
            return json.load(file)
        except ValueError as error:  # json.JSONDecodeError, UnicodeDecodeError
            raise ValueError(f"{what} '{shown}' is not valid JSON: {error}.") from None
        except RecursionError:
            raise ValueError(f"{what} '{shown}' nests lists or objects deeper than Python's "
                             'JSON reader can follow; a COCO file nests a few levels '
                             '(segmentation polygons are the deepest, at 4).') from None


def is_coco_id(value: Any) -> bool:
    """True for an int (not a bool) that fits int64."""
    return isinstance(value, int) and not isinstance(value, bool) and \
        INT64_MIN <= value <= INT64_MAX


def id_problem(entry: Any, kind: str) -> Optional[str]:
    """What is wrong with the id fields of one ``kind`` entry ('images', ...); None if fine."""
    if not isinstance(entry, dict):
        return f'is a {type(entry).__name__}, not an object'
    for field in ID_FIELDS[kind]:
        if field in entry and not is_coco_id(entry[field]):
            return (f'has {field}={short_repr(entry[field])} ({type(entry[field]).__name__}); '
                    'ids must be integers that fit in 64 bits')
    return None


def short_repr(value: Any, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + '...'


def check_categories(categories: List[Any], ann_file: str) -> None:
    """Raise a ValueError naming the file and entry of a category without an
    integer ``id`` or a string ``name`` (categories define the labels, so a bad
    one is never skipped)."""
    for index, cat in enumerate(categories):
        problem = id_problem(cat, 'categories')
        if problem is None and not isinstance(cat.get('name'), str):
            problem = f"has name={short_repr(cat.get('name'))}, not a string"
        if problem is not None:
            raise ValueError(f"Annotation file '{ann_file}': categories[{index}] {problem}.")


def check_coco_ids(content: Any, ann_file: str) -> None:
    """Raise a ValueError naming the file and the first entry whose ids are not
    64-bit integers, for readers (the metrics) that need every entry sound."""
    if not isinstance(content, dict):
        raise ValueError(f"Annotation file '{ann_file}' is not COCO JSON: its top level is a "
                         f'{type(content).__name__}, expected an object.')
    for kind in ID_FIELDS:
        entries = content.get(kind, [])
        if not isinstance(entries, list):
            raise ValueError(f"Annotation file '{ann_file}': '{kind}' is a "
                             f'{type(entries).__name__}, expected a list.')
        for index, entry in enumerate(entries):
            problem = id_problem(entry, kind)
            if problem is not None:
                raise ValueError(f"Annotation file '{ann_file}': {kind}[{index}] {problem}.")
    check_categories(content.get('categories', []), ann_file)
