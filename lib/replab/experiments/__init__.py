"""Page-level experiment helpers: the glue between the library and one paper's pages, one module per paper."""
