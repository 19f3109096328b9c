# The documentation site (MkDocs Material), included by the Makefile.
#
#   make docs        build docs/ with --strict into $(DOCS_SITE_DIR) (gitignored): a broken
#                    link, a broken anchor or a page left out of mkdocs.yml's nav fails
#   make docs-serve  the same site at http://127.0.0.1:8000, rebuilt on every save

DOCS_SITE_DIR ?= site

.PHONY: docs docs-serve

$(VENV)/.installed-docs: $(VENV)/.installed-local
	@echo "installing MkDocs Material into $(VENV) for the documentation site: about 115 MB"
	$(PIP_INSTALL) -e '.[docs]'
	touch $@

docs: $(VENV)/.installed-docs
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir $(DOCS_SITE_DIR)

docs-serve: $(VENV)/.installed-docs
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve --strict
