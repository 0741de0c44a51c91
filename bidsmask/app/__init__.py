"""The bidsmask BIDS App: ``bidsmask BIDS_DIR OUTPUT_DIR {participant,group} [options]``.

- :mod:`bidsmask.app.cli` parses the command line and returns exit codes;
- :mod:`bidsmask.app.participant` processes runs; :mod:`bidsmask.app.group` summarises them;
- :mod:`bidsmask.app.report` handles progress lines, the summary and the log file;
- :mod:`bidsmask.app.demo` runs everything on a tiny dataset it makes itself (``bidsmask-demo``).
"""
