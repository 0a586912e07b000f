// caratflow in one resource group: Function App (Flex Consumption), storage, PostgreSQL Flexible
// Server, Key Vault, Log Analytics + Application Insights, one managed identity and its roles, alerts.
// `azd up` deploys it (azure.yaml); env/*.parameters.json hold per-environment sizes.

targetScope = 'resourceGroup'

@minLength(1)
@maxLength(20)
@description('Environment name (dev, prod, ...): part of resource names and tags.')
param environmentName string

param location string = resourceGroup().location

@description('Object id of the operator who sets the feed password in Key Vault; empty: grant nobody.')
param operatorPrincipalId string = ''

@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
param operatorPrincipalType string = 'User'

// --- Function App
@minValue(1)
@maxValue(1000)
@description('Flex Consumption scale-out cap. Each instance may hold up to 2 x dbPoolMaxSize PostgreSQL connections (activity pool + API pool): keep maximumInstanceCount x 2 x dbPoolMaxSize under the server max_connections.')
param maximumInstanceCount int = 4

@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Zone-redundant Flex Consumption plan (only in regions that offer it).')
param functionZoneRedundant bool = false

@description('NCRONTAB (UTC) of each timer; the setting names come from triggers/timers.py and triggers/maintenance.py.')
param syncScheduleFullNivodaNatural string = '0 0 2 * * *'
param syncScheduleIncrementalNivodaNatural string = '0 */30 * * * *'
param syncScheduleFullNivodaLabgrown string = '0 0 4 * * *'
param syncScheduleIncrementalNivodaLabgrown string = '0 15/30 * * * *'
param notifyDeliverySchedule string = '0 * * * * *'
param retentionSchedule string = '0 30 5 * * *'

@minLength(1)
@description('The supplier GraphQL endpoint (NIVODA_ENDPOINT).')
param nivodaEndpoint string

@minLength(1)
@description('The supplier login name (NIVODA_USERNAME). The password is a Key Vault secret, never a parameter.')
param nivodaUsername string

@allowed([
  'header'
  'wrapper'
])
param nivodaTokenMode string = 'header'

@description('Name of the Key Vault secret holding the feed password; an operator sets its value.')
param nivodaPasswordSecretName string = 'nivoda-password'

@description('Name of the Key Vault secret holding NOTIFY_WEBHOOKS; set it once an operator has stored the secret. Empty: no webhooks.')
param notifyWebhooksSecretName string = ''

@minValue(1)
@maxValue(1000)
@description('Outbound requests per second to the supplier, shared by every instance.')
param feedRateLimitPerSecond int = 25

@description('Comma-separated browser origins the API allows (API_CORS_ORIGINS); empty: none.')
param apiCorsOrigins string = ''

@description('More app settings (name: value), applied last: tunables of shared/config.py that differ from the code defaults.')
param appSettingsOverrides object = {}

// --- PostgreSQL
param postgresSkuName string = 'Standard_B1ms'

@allowed([
  'Burstable'
  'GeneralPurpose'
  'MemoryOptimized'
])
param postgresSkuTier string = 'Burstable'

@minValue(32)
param postgresStorageSizeGB int = 32

@minValue(7)
@maxValue(35)
param postgresBackupRetentionDays int = 7

param postgresGeoRedundantBackup bool = false
param postgresZoneRedundantHighAvailability bool = false

@description('Allow Azure-hosted addresses through the server firewall; required until VNet integration (README, networking).')
param postgresAllowAzureServices bool = true

@minValue(0)
@maxValue(100)
param dbPoolMinSize int = 1

@minValue(1)
@maxValue(200)
param dbPoolMaxSize int = 4

// --- storage and logs
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
])
param storageSkuName string = 'Standard_LRS'

@minValue(1)
@maxValue(365)
param blobSoftDeleteDays int = 7

@minValue(30)
@maxValue(730)
param logRetentionInDays int = 30

// --- alerts
@description('Email address that receives alerts; empty: none.')
param alertEmail string = ''

@secure()
@description('Webhook URL that receives alerts; empty: none.')
param alertWebhookUrl string = ''

@minValue(1)
@maxValue(24)
param alertStalledRunHours int = 6

@minValue(1)
@maxValue(100)
param alertHttp5xxPercent int = 5

@minValue(1)
param alertMinRequests int = 20

param alertSearchP95Ms int = 500
param alertSearchP99Ms int = 1500

var resourceToken = toLower(uniqueString(subscription().id, resourceGroup().id, environmentName))
var tags = {
  'azd-env-name': environmentName
  application: 'caratflow'
}
var databaseName = 'caratflow'
var scanContainerName = 'caratflow-scans'

module identity 'modules/identity.bicep' = {
  name: 'identity'
  params: {
    name: 'id-caratflow-${environmentName}'
    location: location
    tags: tags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    workspaceName: 'log-caratflow-${resourceToken}'
    appInsightsName: 'appi-caratflow-${resourceToken}'
    location: location
    tags: tags
    retentionInDays: logRetentionInDays
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  params: {
    name: 'stcf${resourceToken}'
    location: location
    tags: tags
    skuName: storageSkuName
    deploymentContainerName: 'app-package'
    scanContainerName: scanContainerName
    blobSoftDeleteDays: blobSoftDeleteDays
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  params: {
    name: 'kv-cf-${resourceToken}'
    location: location
    tags: tags
    workspaceId: monitoring.outputs.workspaceId
  }
}

module postgres 'modules/postgres.bicep' = {
  name: 'postgres'
  params: {
    name: 'psql-caratflow-${resourceToken}'
    location: location
    tags: tags
    databaseName: databaseName
    workspaceId: monitoring.outputs.workspaceId
    adminPrincipalId: identity.outputs.principalId
    adminPrincipalName: identity.outputs.name
    skuName: postgresSkuName
    skuTier: postgresSkuTier
    storageSizeGB: postgresStorageSizeGB
    backupRetentionDays: postgresBackupRetentionDays
    geoRedundantBackup: postgresGeoRedundantBackup
    zoneRedundantHighAvailability: postgresZoneRedundantHighAvailability
    allowAzureServices: postgresAllowAzureServices
  }
}

module roles 'modules/roles.bicep' = {
  name: 'roles'
  params: {
    principalId: identity.outputs.principalId
    storageAccountName: storage.outputs.name
    keyVaultName: keyVault.outputs.name
    appInsightsName: monitoring.outputs.appInsightsName
    operatorPrincipalId: operatorPrincipalId
    operatorPrincipalType: operatorPrincipalType
  }
}

module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  params: {
    name: 'func-caratflow-${resourceToken}'
    planName: 'plan-caratflow-${resourceToken}'
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    identityName: identity.outputs.name
    storageBlobEndpoint: storage.outputs.blobEndpoint
    storageQueueEndpoint: storage.outputs.queueEndpoint
    storageTableEndpoint: storage.outputs.tableEndpoint
    deploymentContainerName: storage.outputs.deploymentContainerName
    scanContainerName: storage.outputs.scanContainerName
    appInsightsConnectionString: monitoring.outputs.connectionString
    keyVaultUri: keyVault.outputs.uri
    nivodaPasswordSecretName: nivodaPasswordSecretName
    notifyWebhooksSecretName: notifyWebhooksSecretName
    postgresHost: postgres.outputs.fqdn
    databaseName: postgres.outputs.databaseName
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    // Task hub names are letters and digits only; stable per environment so runs survive redeploys.
    taskHubName: 'caratflow${resourceToken}'
    syncScheduleFullNivodaNatural: syncScheduleFullNivodaNatural
    syncScheduleIncrementalNivodaNatural: syncScheduleIncrementalNivodaNatural
    syncScheduleFullNivodaLabgrown: syncScheduleFullNivodaLabgrown
    syncScheduleIncrementalNivodaLabgrown: syncScheduleIncrementalNivodaLabgrown
    notifyDeliverySchedule: notifyDeliverySchedule
    retentionSchedule: retentionSchedule
    nivodaEndpoint: nivodaEndpoint
    nivodaUsername: nivodaUsername
    nivodaTokenMode: nivodaTokenMode
    feedRateLimitPerSecond: feedRateLimitPerSecond
    dbPoolMinSize: dbPoolMinSize
    dbPoolMaxSize: dbPoolMaxSize
    apiCorsOrigins: apiCorsOrigins
    appSettingsOverrides: appSettingsOverrides
    zoneRedundant: functionZoneRedundant
  }
  // The host resolves the Key Vault reference and opens its storage connections at start-up: the
  // identity's roles must exist by then.
  dependsOn: [
    roles
  ]
}

module alerts 'modules/alerts.bicep' = {
  name: 'alerts'
  params: {
    namePrefix: 'caratflow-${environmentName}'
    location: location
    tags: tags
    appInsightsId: monitoring.outputs.appInsightsId
    alertEmail: alertEmail
    alertWebhookUrl: alertWebhookUrl
    stalledRunHours: alertStalledRunHours
    http5xxPercent: alertHttp5xxPercent
    minRequests: alertMinRequests
    searchP95Ms: alertSearchP95Ms
    searchP99Ms: alertSearchP99Ms
  }
}

// What azd and operators need; nothing secret.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = resourceGroup().name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output SERVICE_API_NAME string = functionApp.outputs.name
output SERVICE_API_URI string = functionApp.outputs.uri
output AZURE_MANAGED_IDENTITY_NAME string = identity.outputs.name
output AZURE_MANAGED_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output AZURE_KEY_VAULT_URL string = keyVault.outputs.uri
output AZURE_POSTGRES_SERVER_NAME string = postgres.outputs.name
output AZURE_POSTGRES_HOST string = postgres.outputs.fqdn
output AZURE_POSTGRES_DATABASE string = postgres.outputs.databaseName
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output APPLICATIONINSIGHTS_NAME string = monitoring.outputs.appInsightsName
