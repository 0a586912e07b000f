// Log alerts on the App Insights data and the action group they notify. Each query lives in
// alerts/<name>.kql; README.md lists what each depends on in the app's telemetry.

param namePrefix string
param location string
param tags object
param appInsightsId string

@description('Email address that receives alerts; empty: none.')
param alertEmail string

@secure()
@description('Webhook (Slack, Teams, incident tool) that receives alerts in the common alert schema; empty: none. Secure: such URLs embed a token.')
param alertWebhookUrl string

@minValue(1)
@maxValue(24)
@description('A sync run still going after this many hours is stalled.')
param stalledRunHours int

@minValue(1)
@maxValue(100)
param http5xxPercent int

@minValue(1)
@description('Fewer requests than this in a window never raise the 5xx or latency alerts.')
param minRequests int

param searchP95Ms int
param searchP99Ms int

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: '${namePrefix}-operators'
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'caratflow'
    enabled: true
    emailReceivers: empty(alertEmail) ? [] : [
      {
        name: 'operators-email'
        emailAddress: alertEmail
        useCommonAlertSchema: true
      }
    ]
    webhookReceivers: empty(alertWebhookUrl) ? [] : [
      {
        name: 'operators-webhook'
        serviceUri: alertWebhookUrl
        useCommonAlertSchema: true
      }
    ]
  }
}

var failedRunsKql = loadTextContent('alerts/failed-runs.kql')
var stalledRunsKql = loadTextContent('alerts/stalled-runs.kql')
var deadLettersKql = loadTextContent('alerts/dead-letters.kql')
var http5xxKql = loadTextContent('alerts/http-5xx.kql')
var searchLatencyKql = loadTextContent('alerts/search-latency.kql')

// Every query returns rows only when something is wrong, so every rule is "more than 0 rows".
var rules = [
  {
    name: 'failed-runs'
    displayName: 'caratflow: sync run failed'
    description: 'A sync run failed (policy refused it, an activity gave up, or it was terminated).'
    severity: 1
    frequency: 'PT5M'
    window: 'PT15M'
    timeRange: ''
    query: failedRunsKql
  }
  {
    name: 'stalled-runs'
    displayName: 'caratflow: sync run stalled'
    description: 'A sync orchestration has been running for more than ${stalledRunHours} hours.'
    severity: 2
    frequency: 'PT30M'
    window: 'PT30M'
    // The start event can be up to stall_hours + 24 h old: look back two days.
    timeRange: 'P2D'
    query: 'let stall_hours = ${stalledRunHours};\n${stalledRunsKql}'
  }
  {
    name: 'dead-letters'
    displayName: 'caratflow: dead letter opened'
    description: 'A partition gave up after its durable retries; replay it with caratflow dead-letters replay.'
    severity: 2
    frequency: 'PT5M'
    window: 'PT15M'
    timeRange: ''
    query: deadLettersKql
  }
  {
    name: 'http-5xx'
    displayName: 'caratflow: API 5xx rate'
    description: 'More than ${http5xxPercent}% of API requests answered with a 5xx.'
    severity: 1
    frequency: 'PT5M'
    window: 'PT15M'
    timeRange: ''
    query: 'let min_requests = ${minRequests};\nlet max_failed_percent = ${http5xxPercent};\n${http5xxKql}'
  }
  {
    name: 'search-latency'
    displayName: 'caratflow: search latency'
    description: 'Search p95 above ${searchP95Ms} ms or p99 above ${searchP99Ms} ms.'
    severity: 3
    frequency: 'PT5M'
    window: 'PT15M'
    timeRange: ''
    query: 'let min_requests = ${minRequests};\nlet p95_ms = ${searchP95Ms};\nlet p99_ms = ${searchP99Ms};\n${searchLatencyKql}'
  }
]

resource queryRules 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = [for rule in rules: {
  name: '${namePrefix}-${rule.name}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: rule.displayName
    description: rule.description
    severity: rule.severity
    enabled: true
    scopes: [
      appInsightsId
    ]
    evaluationFrequency: rule.frequency
    windowSize: rule.window
    overrideQueryTimeRange: empty(rule.timeRange) ? null : rule.timeRange
    criteria: {
      allOf: [
        {
          query: rule.query
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    // Stateful: one notification when the condition starts, one when it clears.
    autoMitigate: true
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}]

output actionGroupId string = actionGroup.id
