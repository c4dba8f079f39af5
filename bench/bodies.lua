-- wrk script: POST the JSON bodies of a file (one per line), in turn, each thread from its own
-- offset. Usage: wrk ... -s bench/bodies.lua URL -- BODIES_FILE
local bodies = {}
local index = 0
local thread_count = 0

function setup(thread)
  thread_count = thread_count + 1
  thread:set("offset", thread_count * 7919)
end

function init(args)
  for line in io.lines(args[1]) do
    if #line > 0 then bodies[#bodies + 1] = line end
  end
  index = (offset or 0) % #bodies
end

function request()
  index = index % #bodies + 1
  return wrk.format("POST", nil, { ["Content-Type"] = "application/json" }, bodies[index])
end
