# written by setup.py
DEFAULT_MODEL = '/work/wt-serve/models/terse-default.gguf'
