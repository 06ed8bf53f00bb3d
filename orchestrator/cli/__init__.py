"""Entry points: the ``gridcoord`` command (``main``), operator processes (``serve``), the local
multi-process launcher (``launch``), the trial CA (``certs``) and the stand-alone aggregator command."""
