# Mutation testing, on demand (not part of make test), included by the Makefile.
#
#   make mutants                          the core's decision modules (about 6 minutes a module)
#   make mutants MUTANTS='poller.mirror*' any mutmut names or globs
#
# mutmut mutates src/poller in a copy (mutants/), runs the unit tests that cover each
# mutant, and lists the survivors: the places a test should pin down next. It gets a venv of
# its own with the function's dependencies but not the project, so that the copy is what
# the tests import.

MUTMUT_VENV := $(VENV)-mutmut
MUTANTS ?= poller.capacity* poller.pacing* poller.batching* poller.settler* poller.writer*

.PHONY: mutants

$(MUTMUT_VENV)/.installed: mk/mutants.mk src/poller/requirements.txt
	@echo "installing mutmut and the function's dependencies into $(MUTMUT_VENV) (about a minute)"
	$(PYTHON) -m venv $(MUTMUT_VENV)
	$(MUTMUT_VENV)/bin/python -m pip install -q --upgrade pip
	$(MUTMUT_VENV)/bin/python -m pip install -q -r src/poller/requirements.txt boto3 "mutmut==3.8.1" \
		"pytest==9.2.0" "pytest-timeout==2.4.0" "hypothesis==6.170.15" "moto[server]==5.2.5" rich
	touch $@

mutants: $(MUTMUT_VENV)/.installed
	$(MUTMUT_VENV)/bin/mutmut run $(MUTANTS)
	$(MUTMUT_VENV)/bin/mutmut results
