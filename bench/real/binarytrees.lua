-- SPDX-License-Identifier: GPL-2.0-only
-- bench/real: Lua table churn (make bench, "real programs"), in the
-- manner of the binary-trees benchmark: complete binary trees of tables
-- built and dropped; prints the node counts.
local function make(d)
  if d == 0 then return { false, false } end
  d = d - 1
  return { make(d), make(d) }
end

local function check(t)
  if not t[1] then return 1 end
  return 1 + check(t[1]) + check(t[2])
end

local maxd = tonumber(arg and arg[1]) or 16
local long = make(maxd)
local out = {}
for d = 4, maxd, 2 do
  local iters = 2 ^ (maxd - d + 4)
  local c = 0
  for _ = 1, iters do c = c + check(make(d)) end
  out[#out + 1] = string.format("%d trees of depth %d check %d", iters, d, c)
end
out[#out + 1] = "long lived tree of depth " .. maxd .. " check " .. check(long)
print(table.concat(out, "\n"))
