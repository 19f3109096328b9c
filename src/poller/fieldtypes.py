"""Airtable's field types, as facts: which hold text, numbers or choices, which are computed,
which may be merge fields. The poller's schema check and mapping and the local emulator
all read these sets, so that they cannot disagree.

Sources: Airtable's field model (https://airtable.com/developers/web/api/field-model) and
its "Update multiple records" page (merge fields: text, number, date and select fields,
never computed ones).
"""

from __future__ import annotations

TEXT_TYPES = frozenset(
    {"singleLineText", "multilineText", "richText", "email", "url", "phoneNumber"}
)
#: Cells stored as IEEE doubles (integers beyond +-2^53 are rounded).
NUMBER_TYPES = frozenset({"number", "currency", "percent", "duration", "rating"})
SELECT_TYPES = frozenset({"singleSelect", "multipleSelects"})
DATE_TYPES = frozenset({"date", "dateTime"})
LINK_TYPE = "multipleRecordLinks"
ATTACHMENT_TYPE = "multipleAttachments"
CHECKBOX_TYPE = "checkbox"
#: Fields whose value Airtable computes; any write to them is refused.
COMPUTED_TYPES = frozenset(
    {
        "formula",
        "autoNumber",
        "createdTime",
        "lastModifiedTime",
        "createdBy",
        "lastModifiedBy",
        "rollup",
        "count",
        "lookup",
        "multipleLookupValues",
        "button",
        "aiText",
    }
)
#: Types allowed in `performUpsert.fieldsToMergeOn`.
MERGEABLE_TYPES = TEXT_TYPES | NUMBER_TYPES | SELECT_TYPES | DATE_TYPES
#: Types a table's primary field may have.
PRIMARY_TYPES = (TEXT_TYPES - {"richText"}) | (NUMBER_TYPES - {"rating"}) | DATE_TYPES
#: Types that can hold a version: a number, or a date-time.
VERSION_TYPES = frozenset({"number", "dateTime"})
