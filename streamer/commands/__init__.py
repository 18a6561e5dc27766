"""One module per ``streamer`` command; each has ``add_parser(subparsers)``."""
