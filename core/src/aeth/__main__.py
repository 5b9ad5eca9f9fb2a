"""``python -m aeth``: the same as the ``aeth`` script."""

from aeth.cli import main

if __name__ == "__main__":
    main()
