"""Every page text has its English translation (the catalogue follows the code)."""

from __future__ import annotations

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from engine.config import PROJECT_ROOT

WEBAPP = PROJECT_ROOT / "webapp"


def test_every_text_of_the_pages_is_translated_to_english() -> None:
    method_map = [("**.py", "python"), ("templates/**.html", "jinja2")]
    texts = {
        message if isinstance(message, str) else message[0]
        for _file, _line, message, _comments, _context in extract_from_dir(str(WEBAPP), method_map)
    }
    with (WEBAPP / "translations/en/LC_MESSAGES/messages.po").open("rb") as source:
        catalogue = read_po(source)
    missing = sorted(t for t in texts if not ((entry := catalogue.get(t)) and entry.string))
    assert missing == [], "add these to webapp/translations/en/LC_MESSAGES/messages.po"
