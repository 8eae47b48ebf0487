"""Reports over the call records (CDR + event log) in ``app.storage``: SQL only, SQLite and
PostgreSQL, every figure with the formula it uses.

- ``filters``: the date range, number and locale a report is limited to (``ReportFilter``).
- ``model``: what a report is (``Report``: figures with formulas, a table, a chart series).
- ``queries``: the reports themselves (``REPORTS``: name -> function(db, filter)).
- ``search``: call search for the console and the streamed CSV export of CDRs.
- ``inbox``: utterances the classifier refused or was unsure of, for an analyst to label.
"""

from app.reports.filters import ReportFilter
from app.reports.model import Figure, Report
from app.reports.queries import REPORTS, run_report

__all__ = ["REPORTS", "Figure", "Report", "ReportFilter", "run_report"]
