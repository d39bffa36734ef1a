"""Read side queries: functions over read tables and the cache, always paginated."""
