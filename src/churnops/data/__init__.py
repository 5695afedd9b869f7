"""Reading churn tables, inferring their schema, cleaning and splitting them."""
