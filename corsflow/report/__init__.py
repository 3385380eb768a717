"""Reports: the findings catalogue, and what turns an analysis into things people read (JSON,
terminal, Markdown, CSV, pandas frames, matplotlib charts, a self-contained HTML page)."""
