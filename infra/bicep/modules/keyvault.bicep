// Key Vault for the app's secrets: the feed password (set by an operator) and the HMAC secrets of API
// keys (created and rotated by the app). No secret value is ever written here.

param name string
param location string
param tags object
param workspaceId string

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    // Access through Azure RBAC role assignments only (roles.bicep), never access policies.
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    // A deleted API key secret cannot be purged before its retention ends, not even by an admin.
    enablePurgeProtection: true
    // Reached from Flex Consumption without VNet integration (README: networking); Entra ID and RBAC
    // decide every read.
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

// Every secret read and write lands in the workspace: who read an API key secret, and when.
resource vaultDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: vault
  properties: {
    workspaceId: workspaceId
    logs: [
      {
        categoryGroup: 'audit'
        enabled: true
      }
    ]
  }
}

output id string = vault.id
output name string = vault.name
output uri string = vault.properties.vaultUri
