-- With GIN's fastupdate (the default), new jobs' words wait in a pending list that every
-- search reads in full until VACUUM or the 4 MB gin_pending_list_limit moves it into the
-- index: a word with two matches read 329 pages at seed scale 1, where its own entries are a
-- handful. Jobs are searched far more often than written, so each insert pays instead.
ALTER INDEX jobs_search_idx SET (fastupdate = off);
-- Turning it off leaves the list in place; move what it holds into the index now.
SELECT gin_clean_pending_list('jobs_search_idx');
