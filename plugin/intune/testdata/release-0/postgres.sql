-- The tables of config/postgres.yaml and config/apps-postgres.yaml as the release before
-- tenant_id created them (their init_statements at commit fafcfdf): the
-- migration tests start from these.
CREATE OR REPLACE FUNCTION intune_timestamptz(t text) RETURNS timestamptz
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
  -- Graph writes "never" as 0001-01-01T00:00:00Z: NULL, not a day in year 1.
  IF t LIKE '0001-01-01%' THEN RETURN NULL; END IF;
  IF t ~ '^\d{4}-\d\d-\d\d$' THEN RETURN (t || 'T00:00:00Z')::timestamptz; END IF;
  IF t !~ '^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:?\d\d)$' THEN RETURN NULL; END IF;
  RETURN t::timestamptz;
EXCEPTION WHEN datetime_field_overflow OR invalid_datetime_format THEN RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION intune_boolean(v jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT CASE jsonb_typeof(v) WHEN 'boolean' THEN v::boolean END $$;
CREATE OR REPLACE FUNCTION intune_bigint(v jsonb) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT CASE WHEN jsonb_typeof(v) = 'number' AND v::numeric = trunc(v::numeric)
  AND v::numeric BETWEEN -9223372036854775808 AND 9223372036854775807 THEN v::numeric::bigint END $$;
CREATE OR REPLACE FUNCTION intune_numeric(v jsonb) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT CASE jsonb_typeof(v) WHEN 'number' THEN v::numeric END $$;
CREATE OR REPLACE FUNCTION intune_jsonb(v jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT CASE WHEN jsonb_typeof(v) <> 'null' THEN v END $$;
CREATE TABLE IF NOT EXISTS managed_devices (
  id text PRIMARY KEY,
  user_id text GENERATED ALWAYS AS (_raw->>'userId') STORED,
  device_name text GENERATED ALWAYS AS (_raw->>'deviceName') STORED,
  managed_device_owner_type text GENERATED ALWAYS AS (_raw->>'managedDeviceOwnerType') STORED,
  enrolled_date_time timestamptz GENERATED ALWAYS AS (intune_timestamptz(_raw->>'enrolledDateTime')) STORED,
  last_sync_date_time timestamptz GENERATED ALWAYS AS (intune_timestamptz(_raw->>'lastSyncDateTime')) STORED,
  operating_system text GENERATED ALWAYS AS (_raw->>'operatingSystem') STORED,
  compliance_state text GENERATED ALWAYS AS (_raw->>'complianceState') STORED,
  jail_broken text GENERATED ALWAYS AS (_raw->>'jailBroken') STORED,
  management_agent text GENERATED ALWAYS AS (_raw->>'managementAgent') STORED,
  os_version text GENERATED ALWAYS AS (_raw->>'osVersion') STORED,
  eas_activated boolean GENERATED ALWAYS AS (intune_boolean(_raw->'easActivated')) STORED,
  eas_device_id text GENERATED ALWAYS AS (_raw->>'easDeviceId') STORED,
  eas_activation_date_time timestamptz GENERATED ALWAYS AS (intune_timestamptz(_raw->>'easActivationDateTime')) STORED,
  azure_ad_registered boolean GENERATED ALWAYS AS (intune_boolean(_raw->'azureADRegistered')) STORED,
  device_enrollment_type text GENERATED ALWAYS AS (_raw->>'deviceEnrollmentType') STORED,
  activation_lock_bypass_code text GENERATED ALWAYS AS (_raw->>'activationLockBypassCode') STORED,
  email_address text GENERATED ALWAYS AS (_raw->>'emailAddress') STORED,
  azure_ad_device_id text GENERATED ALWAYS AS (_raw->>'azureADDeviceId') STORED,
  device_registration_state text GENERATED ALWAYS AS (_raw->>'deviceRegistrationState') STORED,
  device_category_display_name text GENERATED ALWAYS AS (_raw->>'deviceCategoryDisplayName') STORED,
  is_supervised boolean GENERATED ALWAYS AS (intune_boolean(_raw->'isSupervised')) STORED,
  exchange_last_successful_sync_date_time timestamptz GENERATED ALWAYS AS (intune_timestamptz(_raw->>'exchangeLastSuccessfulSyncDateTime')) STORED,
  exchange_access_state text GENERATED ALWAYS AS (_raw->>'exchangeAccessState') STORED,
  exchange_access_state_reason text GENERATED ALWAYS AS (_raw->>'exchangeAccessStateReason') STORED,
  remote_assistance_session_url text GENERATED ALWAYS AS (_raw->>'remoteAssistanceSessionUrl') STORED,
  remote_assistance_session_error_details text GENERATED ALWAYS AS (_raw->>'remoteAssistanceSessionErrorDetails') STORED,
  is_encrypted boolean GENERATED ALWAYS AS (intune_boolean(_raw->'isEncrypted')) STORED,
  user_principal_name text GENERATED ALWAYS AS (_raw->>'userPrincipalName') STORED,
  model text GENERATED ALWAYS AS (_raw->>'model') STORED,
  manufacturer text GENERATED ALWAYS AS (_raw->>'manufacturer') STORED,
  imei text GENERATED ALWAYS AS (_raw->>'imei') STORED,
  compliance_grace_period_expiration_date_time timestamptz GENERATED ALWAYS AS (intune_timestamptz(_raw->>'complianceGracePeriodExpirationDateTime')) STORED,
  serial_number text GENERATED ALWAYS AS (_raw->>'serialNumber') STORED,
  phone_number text GENERATED ALWAYS AS (_raw->>'phoneNumber') STORED,
  android_security_patch_level text GENERATED ALWAYS AS (_raw->>'androidSecurityPatchLevel') STORED,
  user_display_name text GENERATED ALWAYS AS (_raw->>'userDisplayName') STORED,
  configuration_manager_client_enabled_features jsonb GENERATED ALWAYS AS (intune_jsonb(_raw->'configurationManagerClientEnabledFeatures')) STORED,
  wi_fi_mac_address text GENERATED ALWAYS AS (_raw->>'wiFiMacAddress') STORED,
  device_health_attestation_state jsonb GENERATED ALWAYS AS (intune_jsonb(_raw->'deviceHealthAttestationState')) STORED,
  subscriber_carrier text GENERATED ALWAYS AS (_raw->>'subscriberCarrier') STORED,
  meid text GENERATED ALWAYS AS (_raw->>'meid') STORED,
  total_storage_space_in_bytes bigint GENERATED ALWAYS AS (intune_bigint(_raw->'totalStorageSpaceInBytes')) STORED,
  free_storage_space_in_bytes bigint GENERATED ALWAYS AS (intune_bigint(_raw->'freeStorageSpaceInBytes')) STORED,
  managed_device_name text GENERATED ALWAYS AS (_raw->>'managedDeviceName') STORED,
  partner_reported_threat_state text GENERATED ALWAYS AS (_raw->>'partnerReportedThreatState') STORED,
  require_user_enrollment_approval boolean GENERATED ALWAYS AS (intune_boolean(_raw->'requireUserEnrollmentApproval')) STORED,
  management_certificate_expiration_date timestamptz GENERATED ALWAYS AS (intune_timestamptz(_raw->>'managementCertificateExpirationDate')) STORED,
  iccid text GENERATED ALWAYS AS (_raw->>'iccid') STORED,
  udid text GENERATED ALWAYS AS (_raw->>'udid') STORED,
  notes text GENERATED ALWAYS AS (_raw->>'notes') STORED,
  ethernet_mac_address text GENERATED ALWAYS AS (_raw->>'ethernetMacAddress') STORED,
  physical_memory_in_bytes bigint GENERATED ALWAYS AS (intune_bigint(_raw->'physicalMemoryInBytes')) STORED,
  device_action_results jsonb GENERATED ALWAYS AS (intune_jsonb(_raw->'deviceActionResults')) STORED,
  enrollment_profile_name text GENERATED ALWAYS AS (_raw->>'enrollmentProfileName') STORED,
  management_state text GENERATED ALWAYS AS (_raw->>'managementState') STORED,
  bootstrap_token_escrowed boolean GENERATED ALWAYS AS (intune_boolean(_raw->'bootstrapTokenEscrowed')) STORED,
  chrome_os_device_info jsonb GENERATED ALWAYS AS (intune_jsonb(_raw->'chromeOSDeviceInfo')) STORED,
  hardware_information jsonb GENERATED ALWAYS AS (intune_jsonb(_raw->'hardwareInformation')) STORED,
  role_scope_tag_ids jsonb GENERATED ALWAYS AS (intune_jsonb(_raw->'roleScopeTagIds')) STORED,
  windows_active_malware_count bigint GENERATED ALWAYS AS (intune_bigint(_raw->'windowsActiveMalwareCount')) STORED,
  windows_remediated_malware_count bigint GENERATED ALWAYS AS (intune_bigint(_raw->'windowsRemediatedMalwareCount')) STORED,
  _raw jsonb NOT NULL, -- the whole device, exactly as Graph sent it
  _sync_id text,
  _synced_at timestamptz,
  _details_fetched_at timestamptz,
  _deleted boolean NOT NULL DEFAULT false
);
DO $$ BEGIN
  IF (SELECT attcompression FROM pg_attribute WHERE attrelid = 'managed_devices'::regclass AND attname = '_raw') = '' THEN
    ALTER TABLE managed_devices ALTER COLUMN _raw SET COMPRESSION lz4;
  END IF;
EXCEPTION WHEN others THEN NULL;
END $$;
CREATE TABLE IF NOT EXISTS managed_devices_rejected (
  id text,
  sync_id text,
  rejected_at timestamptz NOT NULL DEFAULT now(),
  error text, -- PostgreSQL's, with its SQLSTATE
  device text -- the device exactly as Graph sent it
);
CREATE OR REPLACE FUNCTION intune_timestamptz(t text) RETURNS timestamptz
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
  -- Graph writes "never" as 0001-01-01T00:00:00Z: NULL, not a day in year 1.
  IF t LIKE '0001-01-01%' THEN RETURN NULL; END IF;
  IF t ~ '^\d{4}-\d\d-\d\d$' THEN RETURN (t || 'T00:00:00Z')::timestamptz; END IF;
  IF t !~ '^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:?\d\d)$' THEN RETURN NULL; END IF;
  RETURN t::timestamptz;
EXCEPTION WHEN datetime_field_overflow OR invalid_datetime_format THEN RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION intune_boolean(v jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT CASE jsonb_typeof(v) WHEN 'boolean' THEN v::boolean END $$;
CREATE OR REPLACE FUNCTION intune_bigint(v jsonb) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT CASE WHEN jsonb_typeof(v) = 'number' AND v::numeric = trunc(v::numeric)
  AND v::numeric BETWEEN -9223372036854775808 AND 9223372036854775807 THEN v::numeric::bigint END $$;
CREATE OR REPLACE FUNCTION intune_numeric(v jsonb) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT CASE jsonb_typeof(v) WHEN 'number' THEN v::numeric END $$;
CREATE OR REPLACE FUNCTION intune_jsonb(v jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT CASE WHEN jsonb_typeof(v) <> 'null' THEN v END $$;
CREATE TABLE IF NOT EXISTS detected_apps (
  id text PRIMARY KEY,
  display_name text GENERATED ALWAYS AS (_raw->>'displayName') STORED,
  version text GENERATED ALWAYS AS (_raw->>'version') STORED,
  publisher text GENERATED ALWAYS AS (_raw->>'publisher') STORED,
  platform text GENERATED ALWAYS AS (_raw->>'platform') STORED,
  size_in_byte bigint GENERATED ALWAYS AS (intune_bigint(_raw->'sizeInByte')) STORED,
  device_count bigint GENERATED ALWAYS AS (intune_bigint(_raw->'deviceCount')) STORED,
  _raw jsonb NOT NULL, -- the whole app, exactly as Graph sent it
  _sync_id text,
  _synced_at timestamptz
);
DO $$ BEGIN
  IF (SELECT attcompression FROM pg_attribute WHERE attrelid = 'detected_apps'::regclass AND attname = '_raw') = '' THEN
    ALTER TABLE detected_apps ALTER COLUMN _raw SET COMPRESSION lz4;
  END IF;
EXCEPTION WHEN others THEN NULL;
END $$;
CREATE INDEX IF NOT EXISTS detected_apps_name_version ON detected_apps (display_name, version);
CREATE TABLE IF NOT EXISTS device_apps (
  device_id text NOT NULL,
  app_id text NOT NULL,
  device_name text,
  _sync_id text,
  _synced_at timestamptz,
  PRIMARY KEY (device_id, app_id)
);
CREATE INDEX IF NOT EXISTS device_apps_app ON device_apps (app_id);
