"""The Image tab's results gallery as other parts of the studio read it: an item's file, the chosen result."""

from typing import Any

from core.errors import UserError


def item_path(item: Any) -> str:
    """A Gallery item's file: (path, caption) or {"image": {"path": ...}}."""
    if isinstance(item, (list, tuple)):
        item = item[0]
    if isinstance(item, dict):
        item = item.get("image", item)
        item = item.get("path", item) if isinstance(item, dict) else item
    return str(item)


def chosen_or_first(chosen: str | None, items: list | None, what: str) -> str:
    """The result chosen in the gallery, else its first; `what` ends the sentence for an empty gallery."""
    if chosen:
        return chosen
    if items:
        return item_path(items[0])
    raise UserError(f"Generate an image first, then {what}.")
