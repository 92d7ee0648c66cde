"""``python -m kzoo`` runs the same CLI as the ``kzoo`` executable."""

from kzoo_cli.main import main

if __name__ == "__main__":
    main()
