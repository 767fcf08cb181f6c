# A package, so that pytest imports tests/hardening/conftest.py as "hardening.conftest"
# and it never shadows tests/conftest.py as the module "conftest".
