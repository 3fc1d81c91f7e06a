-- The few accounts too big to fan out (followers_count above FEED_FANOUT_MAX_FOLLOWERS), so a
-- cached feed page finds the ones its reader follows by a primary-key lookup each, instead of
-- reading the reader's whole follow list. The limit is a setting, so the index is not partial.
CREATE INDEX users_followers_count_idx ON users (followers_count);
