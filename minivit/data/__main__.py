"""``python -m minivit.data pack ...`` is ``python -m minivit pack ...`` (see ``minivit/data/pack.py``)."""
import runpy

runpy.run_module("minivit", run_name="__main__")
