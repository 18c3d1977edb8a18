-- wrk script: POST a DER body (an OCSP or RFC 3161 request) read from a file, or GET.
--   [WRK_NONCE=HEX] wrk ... -s bench/post.lua URL -- BODY_FILE CONTENT_TYPE
--   [WRK_COOKIE_FILE=F] wrk ... -s bench/post.lua URL -- GET
-- With WRK_COOKIE_FILE, each GET carries a Cookie header picked at random from the file's lines
-- (many browsers' sessions, bench/portal.sh).
-- Without WRK_NONCE every request is the same bytes, formatted once (wrk's static mode).
-- With WRK_NONCE, the nonce octets as they appear in BODY_FILE, every request carries fresh
-- random octets of the same length in their place, so no two requests ask the same question.
-- With WRK_SERIAL=HEX and WRK_SERIAL_RANGE=N instead (an OCSP request whose CertID serial is
-- HEX), the serial's last three octets are replaced by a random number below N in every
-- request: questions about N different certificates (bench/national.sh's fixture), so that
-- almost every request misses the responder's cache.
-- (wrk decides static or dynamic from the script's top level, before init() sees the
-- arguments, hence an environment variable rather than an argument.)
-- done() prints one line starting with RESULT, read by bench/common.sh.

local prefix, suffix, nonce_len, serial_range
local cookies = {}

-- wrk's default resolve() opens and closes a TCP connection to each address to test it. The
-- peer, `openssl ocsp -port` (3.0.19 here), then spins at 100% CPU on that connection forever
-- and answers no one (an EOF before the request line is never given up, -timeout or not; see
-- openssl/openssl#31129). Skip the probe, for imza and the peer alike.
function wrk.resolve(host, service)
  wrk.addrs = wrk.lookup(host, service)
end

local function from_hex(hex)
  return (hex:gsub("..", function(byte) return string.char(tonumber(byte, 16)) end))
end

local threads_set_up = 0
function setup(thread)
  threads_set_up = threads_set_up + 1
  thread:set("thread_id", threads_set_up)
end

function init(args)
  if args[1] == "GET" then
    local cookie_file = os.getenv("WRK_COOKIE_FILE")
    if cookie_file then
      for line in io.lines(cookie_file) do
        cookies[#cookies + 1] = line
      end
      math.randomseed(os.time() * 1000 + (thread_id or 0))
    end
    return
  end
  local file = assert(io.open(args[1], "rb"), "cannot open " .. tostring(args[1]))
  local body = file:read("*a")
  file:close()
  wrk.method = "POST"
  wrk.body = body
  wrk.headers["Content-Type"] = assert(args[2], "CONTENT_TYPE missing")
  local nonce_hex = os.getenv("WRK_NONCE")
  if nonce_hex then
    local nonce = from_hex(nonce_hex)
    local at = assert(body:find(nonce, 1, true), "WRK_NONCE not found in the request body")
    prefix = body:sub(1, at - 1)
    suffix = body:sub(at + #nonce)
    nonce_len = #nonce
    -- Each thread its own sequence (thread_id is set by setup() before init() runs).
    math.randomseed(os.time() * 1000 + (thread_id or 0))
  end
  local serial_hex = os.getenv("WRK_SERIAL")
  if serial_hex then
    local serial = from_hex(serial_hex)
    local at = assert(body:find(serial, 1, true), "WRK_SERIAL not found in the request body")
    prefix = body:sub(1, at - 1 + #serial - 3)
    suffix = body:sub(at + #serial)
    serial_range = assert(tonumber(os.getenv("WRK_SERIAL_RANGE")), "WRK_SERIAL_RANGE missing")
    math.randomseed(os.time() * 1000 + (thread_id or 0))
  end
end

if os.getenv("WRK_NONCE") then
  local char, random, concat = string.char, math.random, table.concat
  local octets = {}
  function request()
    for i = 1, nonce_len do
      octets[i] = char(random(0, 255))
    end
    return wrk.format(nil, nil, nil, prefix .. concat(octets) .. suffix)
  end
end

if os.getenv("WRK_SERIAL") then
  local char, random, floor = string.char, math.random, math.floor
  function request()
    local n = random(0, serial_range - 1)
    local tail = char(floor(n / 65536) % 256, floor(n / 256) % 256, n % 256)
    return wrk.format(nil, nil, nil, prefix .. tail .. suffix)
  end
end

if os.getenv("WRK_COOKIE_FILE") then
  local random = math.random
  function request()
    return wrk.format(nil, nil, { Cookie = cookies[random(1, #cookies)] })
  end
end

function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d seconds=%.3f rps=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f "
      .. "connect_errors=%d read_errors=%d write_errors=%d timeouts=%d non2xx=%d\n",
    summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, e.connect, e.read, e.write, e.timeout, e.status))
end
