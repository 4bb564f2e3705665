"""The query bank: taxonomies, categories and the sensitive medical queries, with import and export."""
