"""Report: turn an analysis into things people read (JSON, terminal, Markdown, CSV, pandas
frames, matplotlib charts, a self-contained HTML page)."""
