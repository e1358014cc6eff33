"""`ktrdr mcp`: the research operations as MCP tools for AI assistants (stdio)."""
