"""HTTP adapters: one router per resource, grouped by API surface."""
