-- wrk script for every hireme case: `wrk ... -s hireme.lua URL -- POOL_FILE CASE`.
-- POOL_FILE is the Lua table bench/prepare.py writes from the seed's tokens file; each
-- request takes the next pooled user (tokens rotate per request, each thread from its own
-- starting point). CASE names one endpoint, or "mixed" for the weighted mix.
-- done() prints one line "WRK_JSON {...}" that bench/report.py parses (latencies in µs).

local API = "/api/v1"
local pool, case, users, cursor, serial = nil, nil, nil, 0, 0
local threads = {}

function setup(thread)
  thread:set("thread_number", #threads)
  table.insert(threads, thread)
end

local function json_body(text)
  return '{"body":"' .. text .. '"}'
end

local CASES = {
  notifications_unread = function(u) return "GET", API .. "/notifications/unread_count" end,
  messages_unread = function(u) return "GET", API .. "/messages/unread_count" end,
  me = function(u) return "GET", API .. "/me" end,
  jobs = function(u) return "GET", API .. "/jobs" end,
  feed = function(u) return "GET", API .. "/feed" end,
  jobs_q_common = function(u) return "GET", API .. "/jobs?q=" .. pool.common end,
  jobs_q_rare = function(u) return "GET", API .. "/jobs?q=" .. pool.rare end,
  jobs_filter = function(u)
    return "GET", API .. "/jobs?category=" .. pool.category .. "&location=" .. pool.location
  end,
  notifications = function(u) return "GET", API .. "/notifications" end,
  conversations = function(u) return "GET", API .. "/conversations" end,
  messages = function(u) return "GET", API .. "/conversations/" .. u.conv .. "/messages" end,
  post = function(u) return "POST", API .. "/posts", json_body("bench post " .. serial) end,
  like = function(u)
    return "POST", API .. "/posts/" .. math.random(1, pool.max_post_id) .. "/like"
  end,
  send_message = function(u)
    return "POST", API .. "/conversations/" .. u.conv .. "/messages",
           json_body("bench message " .. serial)
  end,
  login = function(u)
    return "POST", API .. "/auth/login",
           '{"email":"' .. u.email .. '","password":"' .. pool.password .. '"}', true
  end,
}

-- ISSUE 10's mix: 50 % cached reads, 30 % DB reads, 20 % writes.
local MIX = {
  {"notifications_unread", 15}, {"messages_unread", 10}, {"me", 10}, {"jobs", 15},
  {"feed", 8}, {"jobs_q_common", 3}, {"jobs_q_rare", 3}, {"jobs_filter", 4},
  {"notifications", 5}, {"conversations", 4}, {"messages", 3},
  {"post", 7}, {"like", 8}, {"send_message", 5},
}
local mix_table = {}

function init(args)
  pool = dofile(args[1])
  case = args[2]
  users = pool.users
  math.randomseed(os.time() + (thread_number or 0) * 7919)
  cursor = ((thread_number or 0) * 131) % #users
  for _, entry in ipairs(MIX) do
    for _ = 1, entry[2] do table.insert(mix_table, entry[1]) end
  end
  if case ~= "mixed" and CASES[case] == nil then
    error("unknown case " .. tostring(case))
  end
end

function request()
  cursor = cursor % #users + 1
  serial = serial + 1
  local user = users[cursor]
  local name = case
  if case == "mixed" then name = mix_table[math.random(1, #mix_table)] end
  local method, path, body, anonymous = CASES[name](user)
  local headers = {}
  if not anonymous then headers["Authorization"] = "Bearer " .. user.token end
  if body then headers["Content-Type"] = "application/json" end
  return wrk.format(method, path, headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p95_us":%d,"p99_us":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), e.connect, e.read, e.write, e.status, e.timeout))
end
