# written by setup.py
DEFAULT_MODEL = '/work/main/models/terse-default.gguf'
