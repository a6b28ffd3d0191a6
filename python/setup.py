# setup.py - copies the built library (../build/libterse.so) into the package when it is
# there, so that `pip install ./python` after `make` gives a module that finds it; it also
# records where the default model is ($TERSE_MODEL, else the source tree's). Everything else is in pyproject.toml.
import os
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))


class BuildWithLib(build_py):
    def run(self):
        super().run()
        dest = os.path.join(self.build_lib, "terse")
        lib = os.environ.get("TERSE_LIB") or os.path.join(HERE, "..", "build", "libterse.so")
        if os.path.exists(lib):
            shutil.copy2(lib, os.path.join(dest, "libterse.so"))
        model = os.environ.get("TERSE_MODEL") or os.path.join(HERE, "..", "models", "terse-default.gguf")
        with open(os.path.join(dest, "_paths.py"), "w") as f:
            f.write("# written by setup.py\nDEFAULT_MODEL = %r\n" %
                    (os.path.abspath(model) if os.path.exists(model) else None))


setup(cmdclass={"build_py": BuildWithLib})
