"""Dated snapshots: every read URL of a channel again under `/snapshot/DATE/`, answering what
the channel held at that instant, for pip, uv and R unchanged (issue 14).

The channel's own files come from their history (history.py records each upload, yank, unyank
and delete in the transaction that makes it; view.py reads the state at an instant); a mirror
channel's upstream files count by their upstream upload-time on the Python side and by the
index states the mirror saw on the R side. routes.py serves the pages and files.
"""
