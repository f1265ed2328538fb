-- Argo CD health for credsync.io RemoteCredential, CredentialProvider,
-- ClusterCredentialProvider and CredentialVendor: one script reading the
-- conditions of API.md.
-- Argo CD runs custom checks with only the base and table libraries, so
-- this uses no string, math or os functions.
local function condition(t)
  if obj.status == nil or obj.status.conditions == nil then
    return nil
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == t then
      return c
    end
  end
  return nil
end

local function describe(c)
  if c.message == nil or c.message == "" then
    return c.reason or ""
  end
  return (c.reason or "") .. ": " .. c.message
end

local function health(status, message)
  return {status = status, message = message}
end

local generation = obj.metadata.generation or 0
local function stale(c)
  return c ~= nil and (c.observedGeneration or generation) < generation
end

local ready = condition("Ready")
if ready == nil then
  return health("Progressing", "Waiting for the first sync")
end
local stalled = condition("Stalled")
local reconciling = condition("Reconciling")
if (obj.status.observedGeneration or 0) < generation or stale(ready) or stale(stalled) or stale(reconciling) then
  return health("Progressing", "Waiting for the operator to observe generation " .. generation)
end

if stalled ~= nil and stalled.status == "True" then
  return health("Degraded", describe(stalled))
end
if ready.status == "True" then
  local expiring = condition("Expiring")
  if expiring ~= nil and expiring.status == "True" then
    return health("Healthy", "Expires soon: " .. (expiring.message or expiring.reason or ""))
  end
  return health("Healthy", describe(ready))
end
if ready.reason == "Expired" then
  return health("Degraded", describe(ready))
end
-- A transient error (Reconciling True carries Ready's reason and message).
return health("Progressing", describe(ready))
