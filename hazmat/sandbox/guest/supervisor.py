#!/usr/bin/env python3
"""hazmat's in-sandbox supervisor (guest program, standard library only, python 3.8+):
this entry point runs ``serve.py`` (the protocol and the jobs), whose modules are
imported compiled, beside it."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import serve  # type: ignore[import-not-found]

serve.main()
