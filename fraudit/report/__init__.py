"""Reports: the terminal (Rich), JSON with a versioned schema, and SARIF 2.1.0."""

from fraudit.report.json_report import SCHEMA_VERSION, to_json_document
from fraudit.report.sarif import to_sarif_document

__all__ = ["SCHEMA_VERSION", "to_json_document", "to_sarif_document"]
