"""The bidsmask BIDS App: ``bidsmask BIDS_DIR OUTPUT_DIR {participant,group} [options]``.

- :mod:`bidsmask.app.cli` parses the command line (:func:`~bidsmask.app.cli.main` returns the
  exit code); :mod:`bidsmask.app.config` holds the validated, frozen configuration;
  :mod:`bidsmask.app.exitcodes` the exit codes and the errors that carry them;
- :mod:`bidsmask.app.participant` finds and schedules the runs, :mod:`bidsmask.app.run` processes
  one run; :mod:`bidsmask.app.group` summarises the participant outputs;
- :mod:`bidsmask.app.progress` handles progress lines, the summary and the log file;
- :mod:`bidsmask.app.demo` runs everything on a tiny dataset it makes itself (``bidsmask-demo``).
"""
