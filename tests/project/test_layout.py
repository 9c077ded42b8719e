"""The tests mirror the package: tests/README.md maps every module to its folder."""

import re
from pathlib import Path

import skmpsae

TESTS = Path(__file__).resolve().parents[1]
PACKAGE = Path(skmpsae.__file__).parent


def _table():
    """``{tests folder: set of skmpsae modules}`` read from tests/README.md."""
    table = {}
    for line in (TESTS / "README.md").read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 2 or not cells[1].startswith("`"):
            continue
        folder = re.match(r"`([a-z_]+)/`", cells[1]).group(1)
        table[folder] = set(re.findall(r"`([A-Za-z_]+(?:\.py|/))`", cells[0]))
    return table


def test_every_test_file_is_in_a_mapped_folder():
    folders = set(_table())
    misplaced = [str(path.relative_to(TESTS)) for path in TESTS.rglob("test_*.py")
                 if path.parent.name not in folders or path.parent.parent != TESTS]
    assert not misplaced, (f"test files outside the folders of tests/README.md: {misplaced}; "
                           "move each next to the tests of the module it tests")
    empty = [folder for folder in folders if not any((TESTS / folder).glob("test_*.py"))]
    assert not empty, f"tests/README.md names folders without tests: {empty}"


def test_every_module_has_a_tests_folder():
    named = set().union(*_table().values())
    modules = {path.name if path.is_file() else f"{path.name}/" for path in PACKAGE.iterdir()
               if (path.suffix == ".py" and path.name != "__init__.py")
               or (path.is_dir() and (path / "__init__.py").is_file())}
    unmapped = sorted(modules - named)
    assert not unmapped, f"modules missing from tests/README.md's table: {unmapped}"
    stale = sorted(named - modules)
    assert not stale, f"tests/README.md names modules that do not exist: {stale}"
