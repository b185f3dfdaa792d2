#!/usr/bin/env python3
"""hazmat's network sentinel (guest program, standard library only, python 3.8+): this
entry point runs ``watch.py``, whose modules are imported compiled, beside it."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import watch  # type: ignore[import-not-found]

watch.main()
