"""Entry point: ``python main.py --data DIR`` runs the default (MaskSQL) pipeline on DIR."""

from masksql_pipe.cli.app import main

if __name__ == "__main__":
    main()
