"""``python -m skmpsae``: the main job (see ``skmpsae._cli``)."""

from ._cli import main

if __name__ == "__main__":
    raise SystemExit(main())
