/** The `export` plan. (Stub: to be defined with its route.) */
export interface ExportPlan {
  kind: 'export';
}
