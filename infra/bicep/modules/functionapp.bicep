// The Function App on Flex Consumption (FC1, Python 3.11) and every app setting it reads.
// Identity-based connections throughout: the settings hold endpoints and client ids, never keys;
// the secrets (the feed password, the webhook list) are Key Vault references resolved with the app identity.

param name string
param planName string
param location string
param tags object

param identityId string
param identityClientId string
param identityName string

param storageBlobEndpoint string
param storageQueueEndpoint string
param storageTableEndpoint string
param deploymentContainerName string
param scanContainerName string

param appInsightsConnectionString string
param keyVaultUri string
param nivodaPasswordSecretName string

@description('Key Vault secret holding NOTIFY_WEBHOOKS (a JSON list whose URLs are tokens); empty: no webhooks.')
param notifyWebhooksSecretName string

param postgresHost string
param databaseName string

@minValue(1)
@maxValue(1000)
param maximumInstanceCount int

@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int

param taskHubName string

param syncScheduleFullNivodaNatural string
param syncScheduleIncrementalNivodaNatural string
param syncScheduleFullNivodaLabgrown string
param syncScheduleIncrementalNivodaLabgrown string
param notifyDeliverySchedule string
param retentionSchedule string

param nivodaEndpoint string
param nivodaUsername string

@allowed([
  'header'
  'wrapper'
])
param nivodaTokenMode string

@minValue(1)
@maxValue(1000)
param feedRateLimitPerSecond int

@minValue(0)
@maxValue(100)
param dbPoolMinSize int

@minValue(1)
@maxValue(200)
param dbPoolMaxSize int

param apiCorsOrigins string

@description('More app settings (name: value), e.g. tunables that differ from the code defaults. Applied last.')
param appSettingsOverrides object

@description('Spread instances over availability zones (regions with zone support only).')
param zoneRedundant bool

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
    zoneRedundant: zoneRedundant
  }
}

// Every setting of shared.config.Settings is either here or listed as left to the code default in
// infra/bicep/README.md ("Settings the template does not set"); tests/infra/test_infra.py holds that.
var appSettings = {
  // --- Functions host: storage for the task hub and timers, reached with the app identity
  AzureWebJobsStorage__blobServiceUri: storageBlobEndpoint
  AzureWebJobsStorage__queueServiceUri: storageQueueEndpoint
  AzureWebJobsStorage__tableServiceUri: storageTableEndpoint
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  APPLICATIONINSIGHTS_CONNECTION_STRING: appInsightsConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=AAD;ClientId=${identityClientId}'
  // The alert rules count trace events (alerts.bicep); adaptive sampling would drop some of them,
  // so traces are kept whole, like requests and exceptions.
  AzureFunctionsJobHost__logging__applicationInsights__samplingSettings__excludedTypes: 'Request;Exception;Trace'
  CARATFLOW_TASK_HUB: taskHubName
  SYNC_SCHEDULE_FULL_NIVODA_NATURAL: syncScheduleFullNivodaNatural
  SYNC_SCHEDULE_INCREMENTAL_NIVODA_NATURAL: syncScheduleIncrementalNivodaNatural
  SYNC_SCHEDULE_FULL_NIVODA_LABGROWN: syncScheduleFullNivodaLabgrown
  SYNC_SCHEDULE_INCREMENTAL_NIVODA_LABGROWN: syncScheduleIncrementalNivodaLabgrown
  NOTIFY_DELIVERY_SCHEDULE: notifyDeliverySchedule
  RETENTION_SCHEDULE: retentionSchedule
  // DefaultAzureCredential picks the user-assigned identity by this client id (storage, vault, database).
  AZURE_CLIENT_ID: identityClientId
  // --- database: an Entra token as the password, fetched per connection by the app
  DATABASE_URL: 'host=${postgresHost} port=5432 dbname=${databaseName} user=${identityName} sslmode=require'
  DATABASE_AUTH: 'entra'
  DB_POOL_MIN_SIZE: string(dbPoolMinSize)
  DB_POOL_MAX_SIZE: string(dbPoolMaxSize)
  // --- supplier feed
  NIVODA_ENDPOINT: nivodaEndpoint
  NIVODA_USERNAME: nivodaUsername
  NIVODA_PASSWORD: '@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/${nivodaPasswordSecretName}/)'
  NIVODA_TOKEN_MODE: nivodaTokenMode
  FEED_RATE_LIMIT_PER_SECOND: string(feedRateLimitPerSecond)
  // --- density scans kept in blob storage, reached with the app identity
  SCAN_STORE: 'blob'
  SCAN_BLOB_ACCOUNT_URL: storageBlobEndpoint
  SCAN_BLOB_CONTAINER: scanContainerName
  // --- API key secrets in Key Vault
  SECRET_STORE: 'keyvault'
  KEY_VAULT_URL: keyVaultUri
  // --- search API
  // The site's default host name (the site is created without a generated domain label).
  API_PUBLIC_URL: 'https://${name}.azurewebsites.net'
  // Azure's front ends put the caller's address in X-Forwarded-For; the socket peer is theirs.
  API_TRUST_FORWARDED_FOR: 'true'
  API_CORS_ORIGINS: apiCorsOrigins
}

// Only once the secret exists: an unresolved reference would reach the app as text that is not JSON,
// and start-up would stop on it.
var notifySettings = empty(notifyWebhooksSecretName) ? {} : {
  NOTIFY_WEBHOOKS: '@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/${notifyWebhooksSecretName}/)'
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  // azd deploys the `api` service of azure.yaml to the site carrying this tag.
  tags: union(tags, {
    'azd-service-name': 'api'
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    // Requests are authenticated by their HMAC signature (api/auth.py); partners do not hold
    // client certificates.
    clientCertEnabled: false
    // Without this, Key Vault references would be resolved with a system-assigned identity, which
    // this app does not have.
    keyVaultReferenceIdentity: identityId
    publicNetworkAccess: 'Enabled'
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      // Set with the site, so the host never starts without its storage and identity settings.
      appSettings: [for setting in items(union(appSettings, notifySettings, appSettingsOverrides)): {
        name: setting.key
        value: setting.value
      }]
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storageBlobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

// azd and the Functions tooling publish with Entra tokens; basic-auth publishing stays off.
resource ftpBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

output name string = site.name
output uri string = 'https://${site.properties.defaultHostName}'
