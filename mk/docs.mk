# The documentation site (MkDocs Material), included by the Makefile.
#
#   make docs        build docs/ with --strict into $(DOCS_SITE_DIR): a broken link, a
#                    broken anchor or a page left out of mkdocs.yml's nav fails
#   make docs-serve  the same site at http://127.0.0.1:8000, rebuilt on every save

DOCS_SITE_DIR ?= $(VENV)/site

.PHONY: docs docs-serve

docs: $(VENV)/.installed
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir $(DOCS_SITE_DIR)

docs-serve: $(VENV)/.installed
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve --strict
