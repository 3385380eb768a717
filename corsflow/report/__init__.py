"""Reports: the findings catalogue and renderers of a :class:`~corsflow.analysis.Report`."""
